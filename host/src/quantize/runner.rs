//! An ONNX model (as a `ModelProto`) run batch 1 on preprocessed NCHW images. [`Runner::new`] loads
//! it as the device does ([`shared::infer::plan::load_proto`]: constant weight dequantization
//! folded, fovea's ops placed, a `compute` model's 1×1 convolutions in integers), so the accuracy
//! gate, `host eval` of an ONNX file and the reference logits score the values the device will
//! compute. [`Runner::tapping`] runs tract's own ops ([`shared::infer::plan::load_spec`]) with
//! chosen intermediate tensors as outputs: calibration observes the fp32 model's activations there.
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
    /// The model's own outputs, loaded as the device loads it.
    pub fn new(proto: &ModelProto, side: usize) -> anyhow::Result<Self> {
        let plan = shared::infer::plan::load_proto(proto.clone(), side)?;
        Ok(Runner { plan, side })
    }

    /// The named tensors (graph inputs, initializer-free node outputs) as outputs, in that
    /// order, computed by tract's own ops (constant weight dequantization folded first).
    pub fn tapping(proto: &ModelProto, side: usize, outputs: &[String]) -> anyhow::Result<Self> {
        let plan = shared::infer::plan::load_spec(proto.clone(), side, outputs)?;
        Ok(Runner { plan, side })
    }

    /// The plan's operators other than its source and constants, by name (tests read which
    /// of fovea's ops the loader placed).
    #[cfg(test)]
    pub fn op_names(&self) -> Vec<String> {
        (self.plan.model().nodes().iter())
            .map(|n| n.op().name().to_string())
            .filter(|n| n != "Source" && n != "Const")
            .collect()
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
