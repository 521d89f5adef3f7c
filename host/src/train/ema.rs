//! Exponential moving average of the weights (timm `ModelEmaV2`, Keras `use_ema`): the copy
//! that is validated, early-stopped on and saved. BatchNorm running statistics are averaged
//! too, as timm does for buffers.
use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};

use crate::model::net::EfficientNet;

/// The averaged model and its decay.
pub struct Ema {
    /// The averaged weights, in evaluation mode.
    pub model: EfficientNet,
    decay: f64,
    updates: u64,
}

impl Ema {
    /// Starts the average at the current weights.
    pub fn new(model: &EfficientNet, decay: f64) -> Self {
        Ema {
            model: model.valid(),
            decay,
            updates: 0,
        }
    }

    /// The decay used at the next update: timm's warm-up `min(decay, (1 + n) / (10 + n))`, so
    /// the average is not dominated by the random initialisation in short runs.
    pub fn current_decay(&self) -> f64 {
        let n = self.updates as f64;
        self.decay.min((1.0 + n) / (10.0 + n))
    }

    /// `ema ← d · ema + (1 − d) · current`, parameter by parameter (matched by `ParamId`).
    pub fn update(&mut self, current: &EfficientNet) {
        let mut collect = Collect(HashMap::new());
        current.visit(&mut collect);
        let d = self.current_decay();
        let model = self.model.clone();
        self.model = model.map(&mut Blend {
            current: collect.0,
            decay: d,
        });
        self.updates += 1;
    }
}

struct Collect(HashMap<ParamId, TensorData>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.insert(param.id, param.val().into_data());
    }
}

struct Blend {
    current: HashMap<ParamId, TensorData>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(data) = self.current.remove(&param.id) else {
            return param;
        };
        let decay = self.decay;
        param.map(|ema| {
            let current = Tensor::<D>::from_data(data, &ema.device());
            ema.mul_scalar(decay) + current.mul_scalar(1.0 - decay)
        })
    }
}
