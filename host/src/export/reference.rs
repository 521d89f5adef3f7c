//! Reference data beside an export: preprocessed input tensors and the logits of the model that
//! wrote them (burn for `host export`, the device's runtime on the int8 file for `host
//! quantize`), so checkers (the parity tests with tract, `scripts/check-onnx.sh` with
//! onnxruntime) compare a runtime against it on exactly the same numbers.
//!
//! `DIR/reference.json`: `{"images": [paths], "input_shape": [n, 3, s, s], "input": [n·3·s²
//! f32, row-major], "logits_shape": [n, classes], "logits": [n·classes f32]}`, and from `host
//! quantize` also `"spec_logits"` (tract's own ops on the int8 file: the ONNX as specified, in
//! f32); floats are written with shortest round-trip digits, so they read back bit-exact.
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use shared::decode::decode_file;
use shared::preprocess::{PreprocessConfig, preprocess};

use super::fold::values;
use crate::model::net::EfficientNet;

/// File name inside the reference directory.
pub const FILE: &str = "reference.json";

/// Inputs and logits of one batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// The source images, in batch order.
    pub images: Vec<PathBuf>,
    /// `[n, 3, s, s]`.
    pub input_shape: [usize; 4],
    /// Preprocessed inputs, row-major.
    pub input: Vec<f32>,
    /// `[n, classes]`.
    pub logits_shape: [usize; 2],
    /// The logits of the model that wrote the reference, row-major: burn's for `host export`,
    /// the device runtime's on the int8 file for `host quantize` (`shared::infer`: a `compute`
    /// file's 1×1 convolutions as integer sums); runtimes are then compared to those.
    pub logits: Vec<f32>,
    /// `host quantize` only: tract's own ops on the int8 file (each QuantizeLinear,
    /// DequantizeLinear and Conv as ONNX specifies it, in f32), row-major; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spec_logits: Vec<f32>,
}

/// Decodes and preprocesses `images` with `pre` (shared's code, as the device runs it):
/// `[n, 3, s, s]` row-major.
pub fn inputs(pre: &PreprocessConfig, images: &[PathBuf]) -> anyhow::Result<Vec<f32>> {
    anyhow::ensure!(!images.is_empty(), "no reference images given (--images)");
    let s = pre.size as usize;
    let mut input = Vec::with_capacity(images.len() * 3 * s * s);
    for path in images {
        // DecodeError names the file.
        let decoded = decode_file(path)?;
        let x = preprocess(&decoded.image, pre)
            .with_context(|| format!("preprocessing {}", path.display()))?;
        input.extend(x);
    }
    Ok(input)
}

/// [`inputs`], run through `model` (evaluation mode) as one batch.
pub fn compute(
    model: &EfficientNet,
    pre: &PreprocessConfig,
    images: &[PathBuf],
    device: &Device,
) -> anyhow::Result<Reference> {
    let s = pre.size as usize;
    let input = inputs(pre, images)?;
    let n = images.len();
    let x = Tensor::<4>::from_data(TensorData::new(input.clone(), [n, 3, s, s]), device);
    let logits = model.forward(x);
    let [_, classes] = logits.dims();
    Ok(Reference {
        images: images.to_vec(),
        input_shape: [n, 3, s, s],
        input,
        logits_shape: [n, classes],
        logits: values(logits)?,
        spec_logits: Vec::new(),
    })
}

impl Reference {
    /// Writes `dir/reference.json` (creating `dir`).
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(FILE);
        let text = serde_json::to_string(self)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}
