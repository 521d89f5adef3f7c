//! Class activation maps on the device (no gradients in tract): for a model exported with a
//! GAP → linear head, `logits = GAP(features) · W + b`, so the map
//! `M(y, x) = Σ_c features[c, y, x] · Σ_{k ∈ positive} W[c, k]` shows where the evidence for the
//! positive classes lies, and its mean plus the summed biases equals the summed positive logits.
use anyhow::{Context, ensure};
use prost::Message;
use tract_onnx::pb::{ModelProto, TensorProto};

/// The linear head's weights, read from the ONNX initializers `host export` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearHead {
    /// `[channels, classes]`, row-major.
    pub weight: Vec<f32>,
    /// `[classes]`.
    pub bias: Vec<f32>,
    /// Feature channels.
    pub channels: usize,
    /// Classes.
    pub classes: usize,
}

/// Name of the feature-map output.
pub const FEATURES: &str = "features";

fn floats(t: &TensorProto) -> anyhow::Result<Vec<f32>> {
    if !t.float_data.is_empty() {
        return Ok(t.float_data.clone());
    }
    ensure!(
        t.raw_data.len().is_multiple_of(4),
        "{}: raw data is not f32",
        t.name
    );
    Ok(t.raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
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
        weight: floats(w)?,
        bias: floats(b)?,
        channels,
        classes,
    };
    ensure!(
        head.weight.len() == channels * classes && head.bias.len() == classes,
        "classifier.output shapes disagree"
    );
    Ok(Some(head))
}

/// The map for `positive` classes from one `[channels, h·w]` feature map.
pub fn class_map(features: &[f32], head: &LinearHead, positive: &[usize]) -> Vec<f32> {
    let hw = features.len() / head.channels;
    let mut map = vec![0.0f32; hw];
    for c in 0..head.channels {
        let w: f32 = positive
            .iter()
            .map(|&k| head.weight[c * head.classes + k])
            .sum();
        for (m, f) in map.iter_mut().zip(&features[c * hw..(c + 1) * hw]) {
            *m += w * f;
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_map_by_hand_and_its_mean_is_the_logit() {
        // 2 channels of a 2×2 map, 3 classes; positive = classes 1 and 2.
        let head = LinearHead {
            weight: vec![0.5, 1.0, -2.0, 0.25, 3.0, 1.0],
            bias: vec![0.0, 0.1, -0.2],
            channels: 2,
            classes: 3,
        };
        let features = [1.0, 2.0, 0.0, -1.0, 4.0, 0.0, 2.0, 1.0];
        // Σ_k∈{1,2} W[c,k]: channel 0: 1 − 2 = −1; channel 1: 3 + 1 = 4.
        // map = −1·[1, 2, 0, −1] + 4·[4, 0, 2, 1] = [15, −2, 8, 5].
        let map = class_map(&features, &head, &[1, 2]);
        assert_eq!(map, vec![15.0, -2.0, 8.0, 5.0]);
        // GAP(features) = [0.5, 1.75]; logits 1 and 2: 0.5·1 + 1.75·3 + 0.1 = 5.85,
        // 0.5·(−2) + 1.75·1 − 0.2 = 0.55; their sum 6.4 = mean(map) 6.5 + biases −0.1.
        let mean = map.iter().sum::<f32>() / 4.0;
        assert!((mean + 0.1 - 0.2 - 6.4).abs() < 1e-6);
    }
}
