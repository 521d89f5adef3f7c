//! The classifier on top of the feature map: global average pool → dropout → linear, or the
//! seed model's `GAP → Dense(1024, ReLU) → Dense(n)` with the same dropout after the pool.
use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// Width of the hidden layer of [`Head::Mlp`].
pub const MLP_HIDDEN: usize = 1024;

/// Which classifier to put on the features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Head {
    /// One linear layer, as in EfficientNet.
    #[default]
    Linear,
    /// Linear to [`MLP_HIDDEN`] → ReLU → linear, as in the seed Keras model.
    Mlp,
}

/// Pool, dropout and the dense layer(s).
#[derive(Module, Debug)]
pub struct Classifier {
    /// Global average pool to 1×1.
    pub pool: AdaptiveAvgPool2d,
    /// Dropout on the pooled features (training only).
    pub dropout: Dropout,
    /// [`Head::Mlp`]'s hidden layer.
    pub hidden: Option<Linear>,
    /// The output layer (timm `classifier`).
    pub output: Linear,
}

impl Classifier {
    /// A `head` from `features` channels to `classes` logits with dropout `dropout`.
    ///
    /// Dense layers are initialised uniform in ±1/√fan_out (timm `_init_weight_goog`, which
    /// also zeroes the bias; here the bias draws from the same range).
    pub fn new(head: Head, features: usize, classes: usize, dropout: f64, device: &Device) -> Self {
        let dense = |i: usize, o: usize| {
            let r = 1.0 / (o as f64).sqrt();
            LinearConfig::new(i, o)
                .with_initializer(Initializer::Uniform { min: -r, max: r })
                .init(device)
        };
        let (hidden, last_in) = match head {
            Head::Linear => (None, features),
            Head::Mlp => (Some(dense(features, MLP_HIDDEN)), MLP_HIDDEN),
        };
        Classifier {
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(dropout).init(),
            hidden,
            output: dense(last_in, classes),
        }
    }

    /// `[N, C, H, W]` features → `[N, classes]` logits.
    pub fn forward(&self, features: Tensor<4>) -> Tensor<2> {
        let pooled: Tensor<2> = self.pool.forward(features).flatten(1, 3);
        let mut x = self.dropout.forward(pooled);
        if let Some(hidden) = &self.hidden {
            x = relu(hidden.forward(x));
        }
        self.output.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn shapes_and_parameters() {
        let device = Device::flex();
        let linear = Classifier::new(Head::Linear, 1280, 5, 0.2, &device);
        assert_eq!(linear.num_params(), 1280 * 5 + 5);
        let mlp = Classifier::new(Head::Mlp, 1280, 5, 0.2, &device);
        assert_eq!(mlp.num_params(), 1280 * 1024 + 1024 + 1024 * 5 + 5);
        let x = Tensor::<4>::ones([3, 1280, 2, 2], &device);
        assert_eq!(mlp.forward(x).dims(), [3, 5]);
    }

    // A 2-channel 2×2 map pooled to [2.5, 0.5], then W = [[1, 0, -1], [2, 1, 0]] ([in, out]),
    // b = [0, 1, 2]: logits [2.5 + 1, 0.5 + 1, -2.5 + 2] = [3.5, 1.5, -0.5].
    //   torch: nn.Linear(2, 3) with weight = W.T, bias = b applied to x.mean((2, 3))
    #[test]
    fn pools_then_applies_the_linear_layer() {
        let device = Device::flex();
        let mut c = Classifier::new(Head::Linear, 2, 3, 0.5, &device);
        c.output.weight = c.output.weight.map(|w| {
            let data = TensorData::new(vec![1.0f32, 0.0, -1.0, 2.0, 1.0, 0.0], [2, 3]);
            Tensor::from_data(data, &w.device())
        });
        c.output.bias = c
            .output
            .bias
            .map(|b| b.map(|t| Tensor::from_floats([0.0, 1.0, 2.0], &t.device())));
        let x = Tensor::<4>::from_data(
            TensorData::new(
                vec![1.0f32, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0, 2.0],
                [1, 2, 2, 2],
            ),
            &device,
        );
        // Dropout 0.5 is inactive outside training.
        let y: Vec<f32> = c.forward(x).into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(y, [3.5, 1.5, -0.5]);
    }
}
