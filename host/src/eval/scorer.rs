//! What `host eval` scores with: the run's burn model (`model.bpk`, the default), or an ONNX
//! file exported from it (fp32 or `host quantize`'s int8) run by the device's loader
//! (`shared::infer`).
//! Both give softmax probabilities per prepared image and a heatmap per image: Grad-CAM through
//! burn's autodiff for the host model, the class activation map from the export's `features`
//! output and linear head for an ONNX file (tract has no gradients), as the device draws it.
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use burn::tensor::{Device, Tensor, TensorData};
use shared::heatmap::{Heatmap, LinearHead, class_map};

use super::gradcam;
use crate::model::net::EfficientNet;
use crate::quantize::runner::Runner;
use crate::train::config::TrainConfig;
use crate::train::data::Split;
use crate::train::evaluate;

/// An ONNX file and how tract runs it.
pub struct OnnxModel {
    /// The file.
    pub path: PathBuf,
    /// Its SHA-256 (hex): what a bundle of it must carry to use this report's threshold.
    pub sha256: String,
    /// The `quantization` metadata of an int8 file (`host quantize`), if any.
    pub quantization: Option<String>,
    runner: Runner,
    head: Option<LinearHead>,
}

/// The model being evaluated.
pub enum Scorer {
    /// The run's burn model in evaluation mode.
    Host(Box<EfficientNet>),
    /// An ONNX export of the run, in tract.
    Onnx(OnnxModel),
}

impl OnnxModel {
    /// Reads `path` and checks it against the run's configuration (classes, preprocessing
    /// hash; tract loads it at the run's input size).
    pub fn load(path: &Path, cfg: &TrainConfig) -> anyhow::Result<OnnxModel> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        crate::package::onnx_check::check_model(path, &bytes, &cfg.classes, &cfg.preprocess)?;
        let proto =
            shared::onnx::model::decode(&bytes).with_context(|| path.display().to_string())?;
        let runner = Runner::new(&proto, cfg.preprocess.size as usize)
            .with_context(|| format!("{}: tract", path.display()))?;
        let graph = (proto.graph.as_ref())
            .with_context(|| format!("{}: the model has no graph", path.display()))?;
        let head = shared::onnx::head::linear_head(graph)
            .with_context(|| format!("{}", path.display()))?;
        let quantization = proto
            .metadata_props
            .iter()
            .find(|p| p.key == crate::quantize::QUANTIZATION_KEY)
            .map(|p| p.value.clone());
        Ok(OnnxModel {
            path: path.to_owned(),
            sha256: shared::bundle::sha256_hex(&bytes),
            quantization,
            runner,
            head,
        })
    }
}

impl Scorer {
    /// Row-major `[items, classes]` softmax probabilities over a prepared split.
    pub fn probabilities(
        &self,
        split: &Split,
        cfg: &TrainConfig,
        device: &Device,
    ) -> anyhow::Result<Vec<f32>> {
        match self {
            Scorer::Host(model) => Ok(evaluate::predict(
                model,
                split,
                &cfg.preprocess,
                cfg.batch_size,
                device,
            )),
            Scorer::Onnx(m) => {
                let x = crate::train::data::batch_all(split, &cfg.preprocess);
                m.runner.probabilities(&x)
            }
        }
    }

    /// The heatmap of one prepared input (`3·s²` values) for the `positive` classes; `None` for
    /// an ONNX model without a linear head (no class activation map).
    pub fn heatmap(
        &self,
        x: Vec<f32>,
        side: usize,
        positive: &[usize],
        device: &Device,
    ) -> anyhow::Result<Option<Heatmap>> {
        match self {
            Scorer::Host(model) => {
                let x = Tensor::<4>::from_data(TensorData::new(x, [1, 3, side, side]), device);
                Ok(Some(gradcam::grad_cam(model, x, positive, device)))
            }
            Scorer::Onnx(m) => {
                let Some(head) = &m.head else {
                    return Ok(None);
                };
                let mut outputs = m.runner.run(&x)?;
                ensure!(outputs.len() >= 2, "the model has no features output");
                let features = outputs.swap_remove(1);
                let hw = features.len() / head.channels;
                let fh = (hw as f64).sqrt().round() as usize;
                ensure!(fh * fh == hw, "features map of {hw} cells is not square");
                let map = class_map(&features, head, positive);
                Ok(Some(Heatmap::from_coarse(
                    &map,
                    fh as u32,
                    fh as u32,
                    side as u32,
                )))
            }
        }
    }
}
