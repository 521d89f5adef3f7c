//! An ONNX model (as a `ModelProto`) run by tract, batch 1, on preprocessed NCHW images — the
//! runtime the device uses, so calibration and the accuracy gate measure what will ship: constant
//! weight dequantization is folded first, as the device's loader does
//! (`shared::onnx::dequant`).
use std::sync::Arc;

use anyhow::{Context, ensure};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

/// A model optimized for `[1, 3, side, side]` inputs.
pub struct Runner {
    plan: Arc<TypedRunnableModel>,
    side: usize,
}

impl Runner {
    /// The model's own outputs (`outputs` = `None`), or the named tensors (graph inputs,
    /// initializer-free node outputs) in that order.
    pub fn new(
        proto: &ModelProto,
        side: usize,
        outputs: Option<&[String]>,
    ) -> anyhow::Result<Self> {
        let mut proto = proto.clone();
        if let Some(graph) = proto.graph.as_mut() {
            shared::onnx::dequant::fold_constant_dequantize(graph)?;
        }
        let parsed = tract_onnx::onnx()
            .parse(&proto, None)
            .context("tract cannot read the ONNX model")?;
        let mut model = parsed.model;
        if let Some(names) = outputs {
            let outlets = names
                .iter()
                .map(|n| {
                    parsed
                        .outlets_by_name
                        .get(n)
                        .copied()
                        .with_context(|| format!("the model has no tensor named {n}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            model.select_output_outlets(&outlets)?;
        }
        let plan = model
            .with_input_fact(0, f32::fact([1, 3, side, side]).into())
            .with_context(|| format!("fixing the model input to [1, 3, {side}, {side}]"))?
            .into_optimized()
            .context("tract cannot optimize the model")?
            .into_runnable()
            .context("tract cannot plan the model")?;
        Ok(Runner { plan, side })
    }

    /// Runs one image (`3·side²` values); returns every output, flattened.
    pub fn run(&self, chw: &[f32]) -> anyhow::Result<Vec<Vec<f32>>> {
        let s = self.side;
        ensure!(
            chw.len() == 3 * s * s,
            "input has {} values, expected 3×{s}×{s}",
            chw.len()
        );
        let input = Tensor::from_shape(&[1, 3, s, s], chw)?;
        let outputs = self
            .plan
            .run(tvec!(input.into()))
            .context("running the model")?;
        outputs
            .iter()
            .map(|t| {
                let view = t
                    .to_plain_array_view::<f32>()
                    .context("model output is not f32")?;
                Ok(view.iter().copied().collect())
            })
            .collect()
    }

    /// Softmax probabilities of the first output (the logits) for each image of `batch`
    /// (`[n, 3, side, side]` flattened), row-major `[n, classes]`.
    pub fn probabilities(&self, batch: &[f32]) -> anyhow::Result<Vec<f32>> {
        let per = 3 * self.side * self.side;
        let mut probs = Vec::new();
        for chw in batch.chunks(per) {
            let logits = self.run(chw)?.swap_remove(0);
            probs.extend(shared::task::softmax(&logits));
        }
        Ok(probs)
    }
}
